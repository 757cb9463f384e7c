"""Training runtime: optimizer, callbacks, resumable fit, the experiment
runner shared by the drivers, tf.distribute and mixed precision."""
