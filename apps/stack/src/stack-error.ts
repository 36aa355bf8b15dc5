/** A problem the user can fix, told in one line with the command that fixes it. */
export class StackError extends Error {
  override readonly name = 'StackError';
}
