"""The reliability suite: table-driven bad inputs and faults (see `reliability_cases.py`)."""
