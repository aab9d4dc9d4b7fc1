/**
 * Access-control roles. Each role includes the ones before it:
 * viewer (live, history) < operator (the perfusionist: alarm actions, commands, annotations)
 * < engineer (replay, export, limit and rule changes, out-of-service) < admin (tokens).
 */
export const ROLES = ['viewer', 'operator', 'engineer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who is acting, as authenticated by a token: the user name is the token's name. */
export interface Principal {
  user: string;
  role: Role;
}

const RANK: Readonly<Record<Role, number>> = Object.freeze({ viewer: 0, operator: 1, engineer: 2, admin: 3 });

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && Object.hasOwn(RANK, value);
}

/** True when `role` includes `required`. */
export function roleAtLeast(role: Role, required: Role): boolean {
  return RANK[role] >= RANK[required];
}
