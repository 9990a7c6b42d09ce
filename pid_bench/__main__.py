import sys

from pid_bench.cli import main

sys.exit(main())
