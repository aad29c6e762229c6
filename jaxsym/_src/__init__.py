"""jaxsym's one private package: internals shared by the public modules.

Every name inside is public *to the package* (no leading underscore), and only
jaxsym's own modules import from here (optax's ``_src`` convention); users
import from ``jaxsym`` and its public modules, whose API is stable.
"""
