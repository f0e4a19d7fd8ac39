"""The ``dataaudit`` commands' bodies and shared helpers, below :mod:`dataaudit.cli`'s click group.

:mod:`dataaudit.cli` parses the top-level group and registers the commands defined here, so no
module of the command line grows past what one reader can hold.
"""
