"""Benchmarks for textclf: each measures textclf and its baseline in the same run.

    python -m bench accuracy | train_speed | predict_speed | footprint | http_load | all

Each prints tables and the issue's targets (met or missed), and writes bench/results/NAME.json.
BENCHMARKS.md holds the latest figures and the command behind each table.
"""
