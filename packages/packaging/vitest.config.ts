import { packageTestConfig } from '../../vitest.shared.ts';

export default packageTestConfig(600_000);
