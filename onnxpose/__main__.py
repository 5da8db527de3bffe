import sys

from onnxpose.cli import main

sys.exit(main())
