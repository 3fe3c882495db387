import sys

from lstmbench.cli.main import main

sys.exit(main())
