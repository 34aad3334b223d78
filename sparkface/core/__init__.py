"""What every stage shares: the model's contract, configuration, images, labels and the model
package format."""
