import { packageTestConfig } from '../../vitest.shared.ts';

export default packageTestConfig(60_000);
