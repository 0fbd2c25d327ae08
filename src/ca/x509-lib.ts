// The one place that loads @peculiar/x509. The library needs a Reflect metadata polyfill loaded
// before it (its dependency-injection container refuses to start without one) and a WebCrypto
// provider; both are set up here so every CA module gets a ready library by importing this file.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as ReturnType<typeof x509.cryptoProvider.get>);

export { x509 };
export const subtle = webcrypto.subtle;
