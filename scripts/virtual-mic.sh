#!/usr/bin/env bash
# A PulseAudio virtual microphone (pipe source) for trying streamer's microphone input without hardware.
#   scripts/virtual-mic.sh start [RATE_HZ]   starts PulseAudio if needed, prints the FIFO to write s16le mono PCM into
#   scripts/virtual-mic.sh stop              unloads the source; stops PulseAudio only if `start` started it
# Example:  fifo=$(scripts/virtual-mic.sh start) && streamer serve --mic pulse &
#           sox clip.wav -t raw -r 16000 -e signed -b 16 -c 1 - > "$fifo"
# (The tests in tests/audio do the same from a pytest fixture, with a source name of their own.)
set -euo pipefail

state="${XDG_RUNTIME_DIR:-/tmp}/streamer-virtual-mic"
name=streamer_virtual_mic

start() {
  local rate_hz="${1:-16000}"
  command -v pactl >/dev/null || { echo "virtual-mic: pactl missing: apt-get install pulseaudio pulseaudio-utils" >&2; exit 1; }
  mkdir -p "$state"
  if [ -f "$state/module" ]; then
    echo "virtual-mic: already started (module $(cat "$state/module")); stop it first" >&2
    exit 1
  fi
  if ! pactl info >/dev/null 2>&1; then
    pulseaudio -D --exit-idle-time=-1 --disallow-exit 2>/dev/null || true  # warns when run as root: harmless
    for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
    pactl info >/dev/null 2>&1 || { echo "virtual-mic: pulseaudio did not start" >&2; exit 1; }
    touch "$state/started-pulseaudio"
  fi
  rm -f "$state/mic.fifo"  # module-pipe-source creates the FIFO and refuses a path that exists
  pactl load-module module-pipe-source source_name="$name" file="$state/mic.fifo" \
    format=s16le rate="$rate_hz" channels=1 >"$state/module"
  pactl set-default-source "$name"
  echo "$state/mic.fifo"
}

stop() {
  if [ -f "$state/module" ]; then
    pactl unload-module "$(cat "$state/module")" || true
  fi
  if [ -f "$state/started-pulseaudio" ]; then
    pulseaudio --kill || true
  fi
  rm -rf "$state"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 start [RATE_HZ] | stop" >&2; exit 2 ;;
esac
