import os


def numbers_total():
    with open(os.path.join(os.path.dirname(__file__), "numbers.txt")) as handle:
        return sum(int(line) for line in handle if line.strip())
