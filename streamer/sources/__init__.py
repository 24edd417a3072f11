"""Sample sources at the edge: live microphones (sounddevice/PortAudio) feeding a Pipeline."""
