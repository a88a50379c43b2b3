"""The sample province's generator (test data and its ground truth; dev dependencies only).

`python -m sample --out data/raw` (or `make sample`)."""
