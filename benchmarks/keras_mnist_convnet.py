"""Keras's "Simple MNIST convnet" (keras.io/examples/vision/mnist_convnet), as a user's model file.

The yardstick of benchmarks/recipes.py: ``edgekit train benchmarks/keras_mnist_convnet.py --data builtin:mnist``.
"""

import keras


def build_model(input_shape, num_classes):
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ], name="keras_mnist_convnet")
