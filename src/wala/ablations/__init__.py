"""Small-scale reproductions of the paper's ablations (seed Tables 1 and 2): drivers that train and score rows."""
