#!/usr/bin/env bash
# What a web framework for `tmt serve` costs here: Gradio against a small ASGI app (Starlette +
# uvicorn + python-multipart). For each: does it resolve with tmt's pins (pip --dry-run -c
# constraints.txt), install size and package count in a fresh venv, import time and launch to
# first HTTP 200 of a one-route app (median of 3, one thread).
#   bash benchmarks/serve_frameworks.sh [WORKDIR]     # default /tmp/tmt-frameworks; needs PyPI
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-/tmp/tmt-frameworks}
mkdir -p "$W" && cd "$W"
export OMP_NUM_THREADS=1 GRADIO_ANALYTICS_ENABLED=False
PY=${PYTHON:-python3.11}
declare -A PKGS=([gradio]="gradio" [asgi]="starlette uvicorn python-multipart")
declare -A IMPORT=([gradio]="import gradio" [asgi]="import starlette.applications, uvicorn, multipart")
cat > app_asgi.py <<'PYEOF'
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
async def ok(request): return PlainTextResponse("ok")
uvicorn.run(Starlette(routes=[Route("/", ok)]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
PYEOF
cat > app_gradio.py <<'PYEOF'
import sys, gradio as gr
gr.Interface(fn=lambda s: s, inputs="text", outputs="text").launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
PYEOF
free_port() { $PY -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
median() { sort -n | sed -n 2p; }
$PY -m venv venv-empty
empty=$(du -sk venv-empty/lib/*/site-packages | cut -f1)
echo "load: $(uptime | sed 's/.*load average: //')"
echo "| candidate | resolves with constraints.txt | install MiB | packages | import s | launch to 200 s |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for name in asgi gradio; do
  if timeout 900 "$ROOT/.venv/bin/pip" install -q --dry-run --report "$name-report.json" \
      -c "$ROOT/constraints.txt" ${PKGS[$name]} > "$name-dry.log" 2>&1; then
    resolved=$($PY -c "import json;print(' '.join(i['metadata']['name']+'=='+i['metadata']['version'] for i in json.load(open('$name-report.json'))['install'] if i['metadata']['name'].lower() in ('gradio','starlette','uvicorn','python-multipart')))")
  else resolved="no"; fi
  $PY -m venv "venv-$name" && "venv-$name/bin/pip" install -q ${PKGS[$name]} > "$name-install.log" 2>&1
  size=$(( ($(du -sk venv-$name/lib/*/site-packages | cut -f1) - empty) / 1024 ))
  count=$(( $("venv-$name/bin/pip" list 2>/dev/null | tail -n +3 | wc -l) - 2 ))
  imports=(); launches=()
  for i in 1 2 3; do
    s=$(date +%s.%N); "venv-$name/bin/python" -c "${IMPORT[$name]}"; e=$(date +%s.%N)
    imports+=("$(echo "$e - $s" | bc)")
    port=$(free_port); s=$(date +%s.%N)
    "venv-$name/bin/python" "app_$name.py" "$port" > "app_$name-$i.log" 2>&1 & pid=$!
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" = 200 ]; do sleep 0.1; done
    e=$(date +%s.%N); launches+=("$(echo "$e - $s" | bc)")
    kill $pid; wait $pid 2>/dev/null || true
  done
  echo "| $name | $resolved | $size | $count | $(printf '%s\n' "${imports[@]}" | median) | $(printf '%s\n' "${launches[@]}" | median) |"
done
echo "load: $(uptime | sed 's/.*load average: //')"
