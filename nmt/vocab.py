"""The four special symbols every vocabulary starts with: the bottom floor of nmt.

Tokenizers reserve these ids in both languages; batching pads with PAD and frames targets
with BOS/EOS; the decoder never writes PAD or BOS (`NEVER_WRITTEN`), which the loss and
search both rely on. Nothing here imports anything from nmt.
"""

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
NEVER_WRITTEN = (PAD, BOS)  # ids whose output logit is -inf: no translation contains them
