"""
What to tell a user when ``torch.load(..., weights_only=True)`` refuses a file.

Below every module that loads weights (the model's ImageNet encoder, checkpoints, conversion),
so each says the same thing. Imports nothing of the package.
"""


def torch_load_reason(error: Exception) -> str:
    """
    Torch's own reason a ``torch.load(weights_only=True)`` failed, without its advice.

    Torch's message suggests re-running with ``weights_only=False``, which executes whatever
    the file pickled: never what a user of a weights file should be told. Kept: the
    unpickler's finding ("Unsupported operand 35", "Unsupported global: GLOBAL os.system").
    """
    text = str(error)
    if 'Weights only load failed' not in text:
        first = text.splitlines()[0] if text else ''
        if not first or 'weights_only' in first:  # advice, not a reason
            return type(error).__name__
        return f'{type(error).__name__}: {first}'
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1]
    advice = ('Weights only load failed', 'Check the documentation', 'Please file an issue',
              '(1)', '(2)', 'weights_only')
    for line in (part.strip() for part in text.splitlines()):
        if line and not line.startswith(advice):
            return line.split(' was not an allowed global')[0].split('. Please use')[0] \
                .rstrip('.')
    return type(error).__name__
