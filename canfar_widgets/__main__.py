"""``python -m canfar_widgets`` is the ``canfar-widgets`` command."""

import sys

from canfar_widgets.cli import main

sys.exit(main())
