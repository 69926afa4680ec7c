"""E-mail domains of units: claims, DNS proof, rules, the per-process lookup and the
re-check scheduler."""
