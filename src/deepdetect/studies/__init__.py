"""Studies that train and score several recipes and write a results table (leave one family out)."""
