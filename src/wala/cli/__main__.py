import sys

from wala.cli import main

sys.exit(main())
