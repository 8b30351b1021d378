import { ThemeSelect } from "../ui/ThemeSelect";

/** The frame of the signed-out pages: the product's name, one form, and the theme. */
export function AuthLayout({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <div className="auth">
      <header className="auth-header">
        <span className="brand">Berth</span>
        <ThemeSelect />
      </header>
      <main id="main" className="auth-card">
        <h1>{title}</h1>
        {children}
      </main>
    </div>
  );
}
