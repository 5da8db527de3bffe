"""``python -m onnxpose.testing.posenet_models --form tflite --size 257x257 ...``"""

import sys

from onnxpose.testing.posenet_models.command import main

sys.exit(main())
