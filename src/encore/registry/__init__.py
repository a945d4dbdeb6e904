"""The model registry's side of encore: the promotion gate (`promote`), the promotion flow (`promotion`), and
run comparison (`compare`, rendered by `compare_view`). Registration itself is the `register` stage."""
