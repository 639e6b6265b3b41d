"""A branded store: koudai's shop in a tea house's own layout, with one page of its own."""
