import { isUuid, uuidv7 } from '../lambda/core/ids';

describe('uuidv7', () => {
  it('makes RFC 9562 version-7 UUIDs that sort in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7());
    expect(ids.every(isUuid)).toBe(true);
    expect(ids.every((id) => id[14] === '7' && '89ab'.includes(id[19]!))).toBe(true);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('puts the creation time in the first 48 bits', () => {
    const t = Date.UTC(2030, 0, 1);
    const id = uuidv7(t + 10_000);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBeGreaterThanOrEqual(t);
  });
});
