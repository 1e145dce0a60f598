/** The meshd version, reported by `meshd --version`, `netctl version` and /v1/info. */
export const VERSION = '0.1.0';
