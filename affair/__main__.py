import sys

from affair.cli import main

sys.exit(main())
