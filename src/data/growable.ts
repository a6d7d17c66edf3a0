// Typed arrays that grow as values are pushed, for readers that do not know the row count in advance.

type NumberArray = Float32Array | Float64Array | Int32Array;

/** An append-only typed array; `toArray` returns a trimmed copy. */
export class Growable<A extends NumberArray> {
  private data: A;
  length = 0;

  constructor(private readonly make: (capacity: number) => A, capacity = 1024) {
    this.data = make(capacity);
  }

  push(value: number): void {
    if (this.length === this.data.length) this.grow();
    this.data[this.length++] = value;
  }

  at(index: number): number {
    return this.data[index]!;
  }

  toArray(): A {
    return this.data.slice(0, this.length) as A;
  }

  private grow(): void {
    const bigger = this.make(Math.max(16, this.data.length * 2));
    bigger.set(this.data);
    this.data = bigger;
  }
}
