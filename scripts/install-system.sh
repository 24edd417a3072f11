#!/usr/bin/env bash
# Installs the Debian packages that streamer's tests and tools use (idempotent; skips what is present).
#   audio:   PortAudio for sounddevice, PulseAudio for the virtual test microphone
#   systemd: systemd-analyze for the unit-file checks
#   tts:     speech synthesis and sound tools for keyword training (and its CI miniature)
set -euo pipefail

packages=(
  libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins
  systemd
  espeak-ng flite sox
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "streamer: cannot install system packages (${missing[*]}): need root and apt-get." >&2
  echo "streamer: install them by hand; the tests that need them will be skipped with a reason." >&2
  exit 0
fi
echo "streamer: installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
