"""The legibility-tax report: figures (K Figs. 4-8) and tables from evaluated workdirs."""
