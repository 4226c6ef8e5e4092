#!/usr/bin/env bash
# The Fashion-MNIST-LT (IF = 100) runs behind docs/results.md, one protocol for every row:
# ResNet-32 (1-channel stem), first n_i images per class, 28x28 padded to 32, crop 32 / pad 4 +
# flip, batch 128, SGD 0.9, wd 2e-4, lr 0.1 with a 1-epoch warm-up, 15 epochs, x0.01 from epoch
# 12 and x0.0001 from 14, DRW from 12; two-stage methods add a 5-epoch stage II.
# Stage-II methods reuse the stage-I runs (cRT and CE+H2T on CE, LDAM-DRW+H2T on LDAM-DRW, FFN on
# KPS and CE). Usage: scripts/fmnist_results.sh [runs-folder] [method ...]
set -euo pipefail
LT=${LONGTAIL:-target/release/longtail}
OUT=${1:-runs/fmnist}
shift || true
mkdir -p "$OUT"

run() { # name method [--set ...]
  local name=$1 method=$2; shift 2
  if [ -f "$OUT/$name/final.json" ]; then echo "== $name: done"; return; fi
  echo "== $name ($(date -u +%H:%M))"
  if [ -f "$OUT/$name/state.json" ]; then
    "$LT" train --resume "$OUT/$name"
  else
    "$LT" train --method "$method" --dataset fashion-mnist-lt --out "$OUT/$name" "$@"
  fi
}

want() { [ $# -eq 0 ] || [[ " ${SELECTED} " == *" $1 "* ]]; }
SELECTED="$*"
from() { echo "init_from={ run = \"$OUT/$1\" }"; }

for step in ce ldam-drw balanced-softmax crt ce-drw kps ce+h2t fbl gcl hrdc ldam-drw+h2t ffn mgkt bbn ride ride-ea ride-h2t reslt reslt-h2t; do
  [ -n "$SELECTED" ] && [[ " $SELECTED " != *" $step "* ]] && continue
  case $step in
    crt) run crt crt --set "$(from ce)" ;;
    ce+h2t) run ce+h2t h2t --set "$(from ce)" ;;
    ldam-drw+h2t) run ldam-drw+h2t h2t --set "$(from ldam-drw)" --set 'model.head={ kind = "cosine" }' \
                      --set 'stages.0.loss={ kind = "ldam" }' ;;
    ride-ea) run ride-ea ride-ea --set "$(from ride)" ;;
    ride-h2t) run ride-h2t ride-h2t --set "$(from ride)" ;;
    reslt-h2t) run reslt-h2t reslt-h2t --set "$(from reslt)" ;;
    ffn) run ffn ffn --set "fusion.first={ run = \"$OUT/kps\" }" --set "fusion.second={ run = \"$OUT/ce\" }" ;;
    *) run "$step" "$step" ;;
  esac
done
"$LT" compare "$OUT"/*/ --out "$OUT/summary.md" || true
