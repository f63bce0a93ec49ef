"""The table of the papers' comparison networks: parameters and MACs of the host networks with
ReLU or ATAC activations and none / SE / CBAM / ECA / GE-θ⁺ attention modules.

    KERAS_BACKEND=tensorflow python docs/scripts/attention_networks.py

Prints a Markdown table (the one in docs/models.md). MACs are `keras_atac.models.count_macs`
of the whole network, and of the host network alone (every layer but the attention modules); a
network with a layer type that has no MAC rule gets "n/a" and the type is listed below.
"""

import keras

from keras_atac import layers, models

ATTENTIONS = (None, "se", "cbam", "eca", "ge_theta_plus")
NETWORKS = (
    ("CIFAR ResNet-20 (10 classes, 32×32)", lambda **kw: models.cifar_resnet(20, **kw)),
    ("ResNet-50 v1b (1000 classes, 224×224)", models.resnet50_v1b),
)


def trainable_parameters(model):
    return sum(int(keras.ops.size(weight)) for weight in model.trainable_weights)


def main():
    missing = set()
    print(
        "| network | activation | attention | trainable parameters | parameters | MACs "
        "| MACs without the modules |"
    )
    print("|---|---|---|---|---|---|---|")
    for title, build in NETWORKS:
        for activation in ("relu", "atac"):
            for attention in ATTENTIONS:
                model = build(activation=activation, attention=attention)
                try:
                    macs = f"{models.count_macs(model) / 1e6:,.1f}M"
                except ValueError as error:
                    macs = "n/a"
                    missing.add(str(error).split(" of type ")[1].split(".")[0])
                host = sum(
                    models.count_macs(layer)
                    for layer in model.layers
                    if not layers.is_attention(layer)
                )
                print(
                    f"| {title} | {activation} | {attention or 'none'} | "
                    f"{trainable_parameters(model):,} | {model.count_params():,} | {macs} "
                    f"| {host / 1e6:,.1f}M |"
                )
                keras.backend.clear_session()
    if missing:
        print(f"\nNo MAC rule yet for: {', '.join(sorted(missing))}")


if __name__ == "__main__":
    main()
