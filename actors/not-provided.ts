/**
 * Placeholders for the actors and actions a machine declares and its runner provides
 * (`machine.provide(...)`): the machines stay free of I/O, and reaching one of these
 * means the wiring is wrong, so it throws with the machine's and the part's names.
 */
export function notProvided(machine: string, name: string): () => never {
  return () => {
    throw new Error(`${machine} ${name} was not provided`);
  };
}

/** An action placeholder whose params type the machine's transitions are checked against. */
export function notProvidedAction<P>(machine: string, name: string): (args: unknown, params: P) => void {
  return notProvided(machine, name);
}
