"""Wall-clock limits of the tests, scaled by one factor for slow or busy machines.

Every subprocess timeout and liveness grace in the suite is `limits.seconds(BASE)`, BASE chosen for 2 idle cores
with room to spare (about 5x the time the step takes there). On a slower or shared machine, raise them all at once:
SQUEEZEGAN_TEST_TIME_SCALE=3 bash scripts/test.sh. A limit only decides how long a hung test waits before it
fails; no test passes or fails by how fast the code ran.
"""

import os

SCALE_ENV = 'SQUEEZEGAN_TEST_TIME_SCALE'


def scale():
    value = float(os.environ.get(SCALE_ENV, '1'))
    if not value > 0:
        raise ValueError(f'{SCALE_ENV}={value}: must be a positive number')
    return value


def seconds(base):
    """`base` seconds times the factor."""
    return base * scale()
