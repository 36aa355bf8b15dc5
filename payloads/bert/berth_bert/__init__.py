"""berth's first-party BERT trainer: PyTorch and numpy only. Entry point: ``python3 -m berth_bert``."""

__version__ = "0.1.0"
