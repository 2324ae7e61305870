"""``python -m bench`` (what ``./run bench`` runs): see ``bench/peer.py``."""

import sys

from bench.peer import main

sys.exit(main())
