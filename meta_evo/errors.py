"""The one-line errors the command line turns into exit code 2 (the config's own is
:class:`meta_evo.config.ConfigError`). A module of its own so the run-directory helpers
(:mod:`meta_evo.rundir`) and the lock (:mod:`meta_evo.lock`) share it without importing each
other."""


class RunDirError(ValueError):
    """The run directory cannot be used (it exists, or it is not writable)."""
