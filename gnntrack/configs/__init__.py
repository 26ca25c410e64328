"""Named experiment configs that the installed package carries (experiments import them from here).

The base config every experiment starts from is `gnntrack.train.defaults.default_config`;
`gnntrack.configs.quickstart.quickstart_config` is the quickstart's.
"""
