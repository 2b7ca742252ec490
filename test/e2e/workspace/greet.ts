// A small TypeScript sample for the end-to-end tests.
export interface Person {
  name: string;
  languages: string[];
}

export function greet(person: Person): string {
  const list = person.languages.join(', ');
  return `Hello, ${person.name}! You write ${list}.`;
}

console.log(greet({ name: 'Ada', languages: ['TypeScript', 'Python'] }));
