"""A small Python sample for the end-to-end tests."""


def mean(values):
    """Return the arithmetic mean of a non-empty list of numbers."""
    if not values:
        raise ValueError("mean() needs at least one value")
    return sum(values) / len(values)


def variance(values):
    m = mean(values)
    return sum((v - m) ** 2 for v in values) / len(values)


if __name__ == "__main__":
    data = [2, 4, 4, 4, 5, 5, 7, 9]
    print(f"mean={mean(data)} variance={variance(data)}")
