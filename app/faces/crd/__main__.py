"""``python -m app.faces.crd``: write (or ``--check``) the generated CRDs in crds/."""

import sys

from app.faces.crd import main

sys.exit(main())
