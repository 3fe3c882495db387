"""Analysis of a results database: the paper's figures, its findings with statistics, a report."""
