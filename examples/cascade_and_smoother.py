"""The two building blocks on their own: the CFC cascade's decision and SP smoothing over time."""

import numpy as np

from cfcsp_sdk import Recognizer, Smoother, softmax

rec = Recognizer()
cascade = rec.cascade
print(cascade)
# a face the coarse network calls Negative, and the negative network calls Sadness
coarse = np.array([[0.1, 0.05, 0.05, 0.8]])  # Neutral, Happiness, Surprise, Negative
fine = {0: np.array([[0.1, 0.1, 0.2, 0.6]])}  # Anger, Disgust, Fear, Sadness
probs, labels = cascade.combine(coarse, fine)
print("label:", rec.labels[labels[0]], "probabilities:", {k: round(float(v), 3) for k, v in zip(rec.labels, probs[0])})

# SP: a one-frame flicker in a track's scores disappears after smoothing
scores = np.tile([2.0, 0.0, 0.0, 0.0], (9, 1))
scores[4] = [0.0, 1.0, 0.0, 0.0]  # one noisy frame
print("raw    :", softmax(scores).argmax(1))
print("smooth :", Smoother(window=5).smooth(scores).argmax(1))
