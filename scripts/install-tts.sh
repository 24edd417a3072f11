#!/usr/bin/env bash
# Installs the Debian speech, noise and music packages used by full keyword training (`make train-keyword`).
#   tts:    espeak-ng, flite, festival (+4 diphone voices, 1 HTS voice, 3 mbrola voices), pico (non-free),
#           mbrola (contrib/non-free), RHVoice English (non-free: alan, bdl, clb, slt LGPL; evgeniy, lyubov CC-BY-NC-ND)
#   noise:  sonic-pi-samples (CC0), lincity-ng-data (GPL-2+/CC-BY-SA), asterisk-moh-opsound-wav (CC-BY-SA-3.0)
#   speech: asterisk-core-sounds-en(-wav) (CC-BY-SA-3.0): real recorded prompts, used as negatives
# mbrola voices (and RHVoice's evgeniy and lyubov) are licensed for NON-COMMERCIAL use only; a model trained on
# them inherits that restriction.
# Idempotent: does nothing when everything is present. Needs root and apt-get.
set -euo pipefail

packages=(
  espeak-ng flite sox
  festival festvox-kallpc16k festvox-kdlpc16k festvox-rablpc16k festvox-us-slt-hts festvox-don festlex-oald
  festvox-us1 festvox-us2 festvox-en1
  rhvoice rhvoice-english
  libttspico-utils
  mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1
  sonic-pi-samples lincity-ng-data asterisk-moh-opsound-wav
  asterisk-core-sounds-en asterisk-core-sounds-en-wav
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "streamer: cannot install TTS/noise packages (${missing[*]}): need root and apt-get." >&2
  exit 1
fi

# contrib + non-free hold mbrola and pico; add them for this Debian release if no source lists them yet.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
sources=/etc/apt/sources.list.d/streamer-contrib-non-free.sources
if ! grep -rqsE '^Components:.*non-free( |$)|^deb .* non-free( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "streamer: adding Debian contrib/non-free sources for ${codename} (${sources})"
  cat >"$sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename} ${codename}-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

echo "streamer: installing TTS/noise packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
