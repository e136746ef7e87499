import sys

from affair.cli import main

if __name__ == "__main__":  # guarded: the writer process (spawned) imports this module again
    sys.exit(main())
