import sys

from lienzo.cli import main

sys.exit(main())
