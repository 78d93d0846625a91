"""How long `lienzo --help` and `lienzo models` take in a fresh interpreter, and whether they import torch
(the tests check the imports only: a wall-clock bound is flaky on a shared machine).

    .venv/bin/python benchmarks/cli_startup.py [ROUNDS]
"""

import statistics
import subprocess
import sys
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
CASES = {"lienzo --help": ["--help"], "lienzo models 'res*'": ["models", "res*"]}
CODE = ("import sys, time\nstart = time.perf_counter()\nfrom lienzo.cli import main\n"
        "try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(time.perf_counter() - start, 'torch' in sys.modules, file=sys.stderr)")

for name, argv in CASES.items():
    inside, wall, torch_loaded = [], [], set()
    for _ in range(ROUNDS):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CODE.format(argv=argv)], capture_output=True, text=True,
                              check=True)
        wall.append(time.perf_counter() - start)
        seconds, loaded = done.stderr.split()[-2:]
        inside.append(float(seconds))
        torch_loaded.add(loaded)
    print(f"{name:<24} import+run {statistics.median(inside) * 1000:6.0f} ms  "
          f"process {statistics.median(wall) * 1000:6.0f} ms  "
          f"(median of {ROUNDS}; torch imported: {', '.join(sorted(torch_loaded))})")
