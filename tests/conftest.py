import os
import sys
from pathlib import Path

# wrong_answers.py and other fixtures live beside the tests
sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
