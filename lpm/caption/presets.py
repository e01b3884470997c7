"""Each task's training defaults: what ``lpm caption train --task NAME`` runs when no option
changes it. ``model`` holds ``PixelLLMConfig`` fields, ``train`` the run's (``CaptionTrainConfig``).

A command-line option given explicitly wins over the preset; ``--data`` (the user's own pairs)
starts from ``DIGIT_STRINGS``'s model and training defaults, with the image size read from the data.
"""

# 1 to 4 MNIST digits on a 28x112 canvas; captions of at most 4 words out of 10 (+ 4 specials).
# 14x7 patches: 2 x 16 = 32 image tokens, each digit 2 x 4 of them. 7x7 patches (64 tokens) made a
# step 3x slower here for no gain in a run of this length. 3 epochs of 20,000 canvases reached
# 87.0% held-out exact match (500 canvases) in 4 min 15 s of training at load 5; 4 epochs of 25,000
# leave a margin over 85% in about 10 minutes.
DIGIT_STRINGS = {
    "model": dict(image_size=(28, 112), patch_size=(14, 7), vision_embed_dim=64, vision_num_layers=2,
                  vision_num_heads=4, text_embed_dim=64, text_num_layers=2, text_num_heads=4, ff_mult=4,
                  max_seq_len=8, dropout=0.0),
    "train": dict(samples=25000, val_samples=1000, epochs=4, batch_size=64, lr=2e-3, warmup=200,
                  weight_decay=0.05, grad_clip=1.0, blind_fraction=0.1),
}

# The sequences of --dataset digits (task "digit"): 8 frames of 32x32, each one whole-frame token of
# LPM. The direction is learnt quickly (99.4% of held-out motions right after 752 steps, although
# the digit moves only 1-3 pixels per axis); telling the held-out writers' digits apart is what
# takes the steps. These defaults (8,000 sequences x 4 epochs, 1,000 steps) reached 91.8% held-out
# exact match greedy, 91.6% with 4 beams, in 2 min 21 s at load 2.5 (a step costs 2-3x more at
# load 4-5: about 7 minutes); 6,000 x 4 epochs gave 90.6% (digit 91.0%), 8,000 x 8 epochs 94.6%.
MOVING_DIGITS = {
    "model": dict(encoder="lpm", seq_len=8, frame_size=32, lpm_embed_dim=64, lpm_num_layers=2, lpm_num_heads=4,
                  text_embed_dim=64, text_num_layers=2, text_num_heads=4, ff_mult=4, max_seq_len=10, dropout=0.0),
    "train": dict(samples=8000, val_samples=500, epochs=4, batch_size=32, lr=2e-3, warmup=100,
                  weight_decay=0.05, grad_clip=1.0, blind_fraction=0.05),
}

PRESETS = {"digit-strings": DIGIT_STRINGS, "moving-digits": MOVING_DIGITS}
